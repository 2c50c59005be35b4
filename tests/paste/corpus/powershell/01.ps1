param(
    [Parameter(Mandatory = $true)]
    [string]$Path,
    [int]$Days = 30
)

$cutoff = (Get-Date).AddDays(-$Days)
Get-ChildItem -Path $Path -Recurse -File |
    Where-Object { $_.LastWriteTime -lt $cutoff } |
    Remove-Item -Force -WhatIf
