$services = Get-Service | Where-Object { $_.Status -eq 'Running' }
foreach ($svc in $services) {
    Write-Host "$($svc.Name) is running"
}
$services | Select-Object Name, DisplayName | Export-Csv -Path .\running.csv -NoTypeInformation
