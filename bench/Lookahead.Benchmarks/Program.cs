using BenchmarkDotNet.Running;
using Lookahead.Benchmarks;

// dotnet run -c Release --project bench/Lookahead.Benchmarks -- --filter '*'   BenchmarkDotNet suites
// dotnet run -c Release --project bench/Lookahead.Benchmarks -- peers [...]     llama.cpp side by side (Peers.cs)
if (args.Length > 0 && args[0] == "peers") return Peers.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
