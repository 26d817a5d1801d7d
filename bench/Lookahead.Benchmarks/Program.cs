using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Lookahead.Benchmarks -- --filter '*'   (see README, "Benchmarks")
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
