#!/usr/bin/env pwsh
# Build, test and run Lookahead (PowerShell twin of build.sh).
#   ./build.ps1              build everything (native Release + managed Release)
#   ./build.ps1 test         build, run every test (ctest + NUnit, then the ASan/UBSan build's ctest and the
#                            fuzzers, on Linux), end with "N passed, N failed"
# Environment as for build.sh: BUILD_TYPE, JOBS, LK_CUDA, LK_HARDENING (0 skips the sanitizer build and the
# fuzzers), LK_FUZZ_SECONDS (time per fuzz target, default 15).
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

# Runs ctest in a build tree; returns passed, failed, skipped (ctest counts skipped tests, such as the CUDA
# tests without a GPU, as passed: they are counted apart).
function Invoke-Ctest([string]$BuildDir) {
    Push-Location $BuildDir
    try { & ctest --output-on-failure --parallel "$Jobs" -C $BuildType 2>&1 | Tee-Object -Variable lines | Out-Host } finally { Pop-Location }
    $summary = $lines | Select-String -Pattern '(\d+) tests failed out of (\d+)' | Select-Object -Last 1
    if (-not $summary) { return @(0, 1, 0) }
    $skipped = @($lines | Select-String -Pattern '^\s+\d+ - .*\(Skipped\)').Count
    $failed = [int]$summary.Matches[0].Groups[1].Value
    return @(([int]$summary.Matches[0].Groups[2].Value - $failed - $skipped), $failed, $skipped)
}

# The hardening stage (Linux): a second build tree with clang, ASan and UBSan, its ctest, then every fuzz
# target through tests/fuzz/run.sh. Returns passed, failed, skipped.
function Invoke-Hardening {
    if ($env:LK_HARDENING -eq '0') { Write-Step 'sanitizers and fuzzing skipped (LK_HARDENING=0)'; return @(0, 0, 0) }
    $cxx = Get-Command clang++-14, clang++ -ErrorAction SilentlyContinue | Select-Object -First 1
    # clang without its sanitizer and libFuzzer runtimes cannot build the stage: probe for them first.
    $probe = Join-Path $Root 'build/sanitizer-probe'
    $usable = $false
    if (-not $IsWindows -and $cxx) {
        New-Item -ItemType Directory -Force -Path (Join-Path $Root 'build') | Out-Null
        'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' |
            & $cxx.Source -x c++ '-fsanitize=fuzzer,address,undefined' -o $probe - 2>&1 | Out-Null
        $usable = $LASTEXITCODE -eq 0
        Remove-Item -Force $probe -ErrorAction SilentlyContinue
    }
    if (-not $usable) {
        Write-Step 'sanitizers and fuzzing skipped: they need Linux and clang++ with its sanitizer and libFuzzer runtimes (Debian: apt-get install clang-14 libclang-rt-14-dev)'
        return @(0, 0, 1)
    }
    Write-Step "native library and tests with ASan + UBSan, and the fuzz targets ($($cxx.Source))"
    $sanitize = Join-Path $Root 'build/sanitize'
    & cmake -S $Root -B $sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_COMPILER=$($cxx.Source)" -DLK_FUZZ=ON -DLK_CUDA=OFF | Out-Null
    if ($LASTEXITCODE -ne 0) { return @(0, 1, 0) }
    & cmake --build $sanitize --parallel "$Jobs" | Out-Host
    if ($LASTEXITCODE -ne 0) { return @(0, 1, 0) }
    $env:ASAN_OPTIONS = 'detect_leaks=1:abort_on_error=1'
    $env:UBSAN_OPTIONS = 'print_stacktrace=1'
    try { $counts = Invoke-Ctest $sanitize } finally { Remove-Item Env:ASAN_OPTIONS, Env:UBSAN_OPTIONS }
    $seconds = if ($env:LK_FUZZ_SECONDS) { $env:LK_FUZZ_SECONDS } else { '15' }
    Write-Step "fuzzing ($seconds s per target)"
    & bash (Join-Path $Root 'tests/fuzz/run.sh') --seconds $seconds all 2>&1 | Tee-Object -Variable fuzzLines | Out-Host
    $fuzz = $fuzzLines | Select-String -Pattern '^(\d+) passed, (\d+) failed, (\d+) skipped$' | Select-Object -Last 1
    if (-not $fuzz) { return @($counts[0], ($counts[1] + 1), $counts[2]) }
    $groups = $fuzz.Matches[0].Groups
    return @(($counts[0] + [int]$groups[1].Value), ($counts[1] + [int]$groups[2].Value), ($counts[2] + [int]$groups[3].Value))
}

function Invoke-Tests {
    Build-All
    Write-Step 'native tests (ctest)'
    $nativePassed, $nativeFailed, $nativeSkipped = Invoke-Ctest $NativeBuild

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
    $hardeningPassed, $hardeningFailed, $hardeningSkipped = Invoke-Hardening
    $passed = $nativePassed + $managedPassed + $hardeningPassed
    $failed = $nativeFailed + $managedFailed + $hardeningFailed
    $skipped = $nativeSkipped + $managedSkipped + $hardeningSkipped
    Write-Step "native: $nativePassed passed, $nativeFailed failed, $nativeSkipped skipped; managed: $managedPassed passed, $managedFailed failed, $managedSkipped skipped; sanitizers and fuzzing: $hardeningPassed passed, $hardeningFailed failed, $hardeningSkipped skipped"
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
