$logPath = Join-Path $env:TEMP "install.log"
Start-Transcript -Path $logPath
try {
    Install-Module -Name Pester -Force -Scope CurrentUser
    Write-Host "Installed"
}
catch {
    Write-Warning "Install failed: $_"
}
finally {
    Stop-Transcript
}
