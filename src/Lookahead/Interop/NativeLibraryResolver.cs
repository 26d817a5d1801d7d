using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Lookahead.Interop;

/// <summary>
/// Finds the native library: the LOOKAHEAD_NATIVE_LIBRARY environment variable (a file path) when set, and
/// then nothing else (a path that cannot be loaded is an error naming it); otherwise the app's
/// runtimes/&lt;rid&gt;/native/ folder, then the app folder itself (self-contained publish), then the system
/// search path. When all fail, one exception lists every place tried and why it failed.
/// </summary>
internal static class NativeLibraryResolver
{
    public const string OverrideVariable = "LOOKAHEAD_NATIVE_LIBRARY";

    private static readonly Lock s_lock = new();
    private static bool s_verified;

    // A library registering its own resolver is exactly the advanced scenario CA2255 allows for: it must
    // run before the first P/Invoke, whatever entry point the application uses.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() =>
        NativeLibrary.SetDllImportResolver(typeof(NativeLibraryResolver).Assembly, Resolve);

    /// <summary>Loads the library once and checks it speaks this assembly's ABI version.</summary>
    public static void EnsureCompatible()
    {
        lock (s_lock)
        {
            if (s_verified) return;
            int version = NativeMethods.lk_abi_version();
            if (version != NativeConstants.AbiVersion)
            {
                throw new LookaheadException(
                    $"the native library speaks ABI version {version}, but this Lookahead assembly needs version " +
                    $"{NativeConstants.AbiVersion}; rebuild both from the same source (./build.sh)");
            }
            s_verified = true;
        }
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != NativeMethods.LibraryName) return nint.Zero;
        // An explicit override is a promise: when it cannot be loaded, fail with its reason rather than run
        // whatever library the fallbacks find.
        string? overridePath = Environment.GetEnvironmentVariable(OverrideVariable);
        if (!string.IsNullOrWhiteSpace(overridePath))
        {
            try
            {
                return NativeLibrary.Load(overridePath);
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                throw new DllNotFoundException(
                    $"{OverrideVariable} is set to '{overridePath}', which could not be loaded: {FirstLine(e.Message)}");
            }
        }
        var failures = new List<string>();
        foreach (string candidate in Candidates())
        {
            try
            {
                return NativeLibrary.Load(candidate);
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                failures.Add($"  {candidate}: {FirstLine(e.Message)}");
            }
        }
        if (NativeLibrary.TryLoad(name, assembly, searchPath, out nint handle)) return handle;
        failures.Add($"  '{name}' on the system search path: not found");
        throw new DllNotFoundException(
            "could not load the Lookahead native library. Build it with ./build.sh, or set " +
            $"{OverrideVariable} to its path. Tried:{Environment.NewLine}{string.Join(Environment.NewLine, failures)}");
    }

    private static IEnumerable<string> Candidates()
    {
        string fileName = LibraryFileName();
        string baseDirectory = AppContext.BaseDirectory;
        yield return Path.Combine(baseDirectory, "runtimes", RuntimeIdentifier(), "native", fileName);
        yield return Path.Combine(baseDirectory, fileName);
    }

    private static string LibraryFileName() =>
        OperatingSystem.IsWindows() ? "lookahead.dll" :
        OperatingSystem.IsMacOS() ? "liblookahead.dylib" : "liblookahead.so";

    private static string RuntimeIdentifier()
    {
        string os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
        string arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        return $"{os}-{arch}";
    }

    private static string FirstLine(string text)
    {
        int end = text.IndexOf('\n');
        return end < 0 ? text : text[..end].TrimEnd();
    }
}
