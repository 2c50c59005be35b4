function Get-DiskReport {
    [CmdletBinding()]
    param([string]$ComputerName = $env:COMPUTERNAME)

    Get-CimInstance -ClassName Win32_LogicalDisk -ComputerName $ComputerName |
        ForEach-Object {
            [PSCustomObject]@{
                Drive  = $_.DeviceID
                FreeGB = [math]::Round($_.FreeSpace / 1GB, 1)
            }
        }
}
