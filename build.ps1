#!/usr/bin/env pwsh
# Build, test and run Lookahead (PowerShell twin of build.sh).
#   ./build.ps1              build everything (native Release + managed Release)
#   ./build.ps1 test         build, run every test (ctest + NUnit), end with "N passed, N failed"
#   ./build.ps1 run -- ARGS  build if needed, then run the CLI with ARGS
# No param() block: CLI options such as --prompt must reach the CLI untouched, not PowerShell's binder.
$Command = if ($args.Count -gt 0) { [string]$args[0] } else { 'build' }
$Rest = if ($args.Count -gt 1) { @($args[1..($args.Count - 1)] | ForEach-Object { [string]$_ }) } else { @() }
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$Root = $PSScriptRoot
$BuildType = if ($env:BUILD_TYPE) { $env:BUILD_TYPE } else { 'Release' }
$Jobs = if ($env:JOBS) { $env:JOBS } else { [Environment]::ProcessorCount }
$NativeBuild = Join-Path $Root 'build/native'
$NativeOut = Join-Path $Root 'artifacts/native'
$CliDll = Join-Path $Root "src/Lookahead.Cli/bin/$BuildType/net10.0/Lookahead.Cli.dll"
$TestResults = Join-Path $Root 'build/test-results'
$NativeLibrary = if ($IsWindows) { 'lookahead.dll' } else { 'liblookahead.so' }

function Write-Step([string]$Text) { [Console]::Error.WriteLine("==> $Text") }

function Invoke-Checked([string]$Program, [string[]]$Arguments) {
    & $Program @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Program $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

function Test-Prerequisites([switch]$ForTests) {
    $missing = @()
    if (-not (Get-Command cmake -ErrorAction SilentlyContinue)) { $missing += 'cmake (3.22 or newer)' }
    if (-not ((Get-Command c++ -ErrorAction SilentlyContinue) -or (Get-Command g++ -ErrorAction SilentlyContinue) -or
              (Get-Command clang++ -ErrorAction SilentlyContinue) -or (Get-Command cl -ErrorAction SilentlyContinue))) {
        $missing += 'a C++20 compiler (g++ 12 or clang 14 or newer)'
    }
    if (-not (Get-Command dotnet -ErrorAction SilentlyContinue)) {
        $missing += '.NET 10 SDK (dotnet was not found on PATH)'
    } elseif (-not ((& dotnet --list-sdks) -match '^10\.')) {
        $missing += '.NET 10 SDK (dotnet is installed but has no 10.x SDK)'
    }
    if ($missing.Count -gt 0) {
        [Console]::Error.WriteLine('error: missing prerequisites:')
        $missing | ForEach-Object { [Console]::Error.WriteLine("  - $_") }
        exit 1
    }
}

# CMake arguments for the CUDA backend: on when asked ($env:LK_CUDA = 1) or when nvcc is found (as build.sh).
function Get-CudaArguments {
    $want = if ($env:LK_CUDA) { $env:LK_CUDA } else { 'auto' }
    $nvcc = Get-Command nvcc -ErrorAction SilentlyContinue
    if ($want -eq '0' -or ($want -eq 'auto' -and -not $nvcc)) { return @('-DLK_CUDA=OFF') }
    if (-not $nvcc) { [Console]::Error.WriteLine('error: LK_CUDA=1 but nvcc is not on PATH'); exit 1 }
    $major = [int](((& nvcc --version) -join ' ') -replace '.*release (\d+)\..*', '$1')
    $clang = Get-Command clang++-14 -ErrorAction SilentlyContinue
    if ($major -lt 12 -and $clang) { return @('-DLK_CUDA=ON', "-DCMAKE_CUDA_HOST_COMPILER=$($clang.Source)") }
    if ($major -lt 12) { return @('-DLK_CUDA=ON', '-DCMAKE_CUDA_FLAGS=-allow-unsupported-compiler') }
    return @('-DLK_CUDA=ON')
}

function Build-All {
    Test-Prerequisites
    $cuda = Get-CudaArguments
    Write-Step "native library ($BuildType, $($cuda -join ' '))"
    Invoke-Checked cmake (@('-S', $Root, '-B', $NativeBuild, "-DCMAKE_BUILD_TYPE=$BuildType") + $cuda) | Out-Null
    Invoke-Checked cmake @('--build', $NativeBuild, '--parallel', "$Jobs", '--config', $BuildType)
    Invoke-Checked cmake @('--install', $NativeBuild, '--prefix', $NativeOut, '--config', $BuildType) | Out-Null
    Write-Step "managed projects ($BuildType)"
    Invoke-Checked dotnet @('build', (Join-Path $Root 'Lookahead.sln'), '-c', $BuildType, '--nologo', '-v', 'quiet', '-clp:NoSummary')
}

function Invoke-Tests {
    Build-All
    Write-Step 'native tests (ctest)'
    Push-Location $NativeBuild
    try { & ctest --output-on-failure --parallel "$Jobs" -C $BuildType 2>&1 | Tee-Object -Variable lines | Out-Host } finally { Pop-Location }
    $nativePassed = 0; $nativeFailed = 1; $nativeSkipped = 0
    $summary = $lines | Select-String -Pattern '(\d+) tests failed out of (\d+)' | Select-Object -Last 1
    if ($summary) {
        # ctest counts skipped tests (the CUDA tests without a GPU) as passed; count them apart.
        $nativeSkipped = @($lines | Select-String -Pattern '^\s+\d+ - .*\(Skipped\)').Count
        $nativeFailed = [int]$summary.Matches[0].Groups[1].Value
        $nativePassed = [int]$summary.Matches[0].Groups[2].Value - $nativeFailed - $nativeSkipped
    }

    Write-Step 'managed tests (NUnit)'
    if (Test-Path $TestResults) { Remove-Item -Recurse -Force $TestResults }
    & dotnet test (Join-Path $Root 'Lookahead.sln') -c $BuildType --no-build --nologo `
        --logger 'trx;LogFileName=managed.trx' --results-directory $TestResults
    $managedPassed = 0; $managedFailed = 1; $managedSkipped = 0
    $trx = Get-ChildItem -Path $TestResults -Filter '*.trx' -Recurse -ErrorAction SilentlyContinue | Select-Object -First 1
    if ($trx) {
        $counters = ([xml](Get-Content $trx.FullName)).TestRun.ResultSummary.Counters
        $managedPassed = [int]$counters.passed
        $managedFailed = [int]$counters.failed + [int]$counters.error
        # Ignored tests (the Gpu category without a GPU) are counted in total but not in executed.
        $managedSkipped = [int]$counters.total - [int]$counters.executed
    }
    $passed = $nativePassed + $managedPassed
    $failed = $nativeFailed + $managedFailed
    $skipped = $nativeSkipped + $managedSkipped
    Write-Step "native: $nativePassed passed, $nativeFailed failed, $nativeSkipped skipped; managed: $managedPassed passed, $managedFailed failed, $managedSkipped skipped"
    Write-Output "$passed passed, $failed failed, $skipped skipped"
    if ($failed -ne 0) { exit 1 }
}

function Test-NeedsBuild {
    if (-not (Test-Path $CliDll) -or -not (Test-Path (Join-Path $NativeOut $NativeLibrary))) { return $true }
    $stamp = (Get-Item $CliDll).LastWriteTimeUtc
    $newer = Get-ChildItem -Path (Join-Path $Root 'native'), (Join-Path $Root 'src') -Recurse -File |
        Where-Object { $_.FullName -notmatch '[\\/](bin|obj)[\\/]' -and $_.LastWriteTimeUtc -gt $stamp } | Select-Object -First 1
    return $null -ne $newer
}

switch ($Command) {
    'build' { Build-All; Write-Step 'done: run the CLI with ./build.ps1 run -- generate --prompt "Once upon a time"' }
    'test' { Invoke-Tests }
    'run' {
        $cliArgs = @($Rest | Where-Object { $_ -ne '--' })
        if (Test-NeedsBuild) { Build-All *>&1 | ForEach-Object { [Console]::Error.WriteLine($_) } }
        & dotnet $CliDll @cliArgs
        exit $LASTEXITCODE
    }
    default { [Console]::Error.WriteLine("error: unknown command '$Command' (expected: build, test, run)"); exit 2 }
}
