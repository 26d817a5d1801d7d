using Lookahead.Fuzz;
using SharpFuzz;

// Lookahead.Fuzz TARGET           : serve afl-fuzz (inputs on stdin, each run in a child process that
//                                   survives nothing uncatchable: a stack overflow or a hang is a finding)
// Lookahead.Fuzz TARGET PATH...   : replay files or folders of inputs, report each unexpected exception
if (args.Length == 0 || !FuzzTargetNames.All.Contains(args[0]))
{
    Console.Error.WriteLine($"usage: Lookahead.Fuzz TARGET [PATH...]; targets: {string.Join(", ", FuzzTargetNames.All)}");
    return 2;
}
string target = args[0];
if (args.Length == 1)
{
    Fuzzer.OutOfProcess.Run(stream =>
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        FuzzTargets.Run(target, buffer.ToArray());
    });
    return 0;
}
// Outside afl-fuzz an instrumented library still writes its coverage: give it a map of afl's size.
unsafe
{
    SharpFuzz.Common.Trace.SharedMem = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed(1 << 16);
}
int failures = 0, inputs = 0, accepted = 0;
foreach (string path in args[1..])
{
    IEnumerable<string> files = Directory.Exists(path) ? Directory.EnumerateFiles(path).Order(StringComparer.Ordinal) : [path];
    foreach (string file in files)
    {
        inputs++;
        try
        {
            if (FuzzTargets.Run(target, File.ReadAllBytes(file))) accepted++;
        }
        catch (Exception e)
        {
            failures++;
            Console.Error.WriteLine($"{file}: {e}");
        }
    }
}
Console.Error.WriteLine($"{target}: {inputs} inputs, {accepted} accepted, {inputs - accepted - failures} refused, {failures} unexpected exceptions");
return failures == 0 ? 0 : 1;
