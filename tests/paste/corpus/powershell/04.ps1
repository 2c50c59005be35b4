$response = Invoke-RestMethod -Uri "https://api.example.com/status" -Method Get
if ($response.healthy -eq $true) {
    Write-Output "All good"
} else {
    Write-Error "Service unhealthy: $($response.message)"
    exit 1
}
New-Item -ItemType Directory -Path "C:\logs" -Force | Out-Null
