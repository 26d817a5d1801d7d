using System.Text.Json;

namespace Lookahead.Model;

/// <summary>
/// A Hugging Face model folder opened for reading: config.json plus either model.safetensors or a
/// sharded model.safetensors.index.json with its shards, all memory-mapped.
/// </summary>
public sealed class ModelCheckpoint : IDisposable
{
    private readonly List<SafeTensorsFile> _files;
    private readonly Dictionary<string, (SafeTensorsFile File, TensorInfo Info)> _tensors;

    private ModelCheckpoint(string folder, ModelConfig config, List<SafeTensorsFile> files,
        Dictionary<string, (SafeTensorsFile, TensorInfo)> tensors)
    {
        Folder = folder;
        Config = config;
        _files = files;
        _tensors = tensors;
    }

    /// <summary>The model folder.</summary>
    public string Folder { get; }

    /// <summary>The parsed config.json.</summary>
    public ModelConfig Config { get; }

    /// <summary>The safetensors files, in the order they were opened.</summary>
    public IReadOnlyList<SafeTensorsFile> Files => _files;

    /// <summary>All tensor names across the files.</summary>
    public IEnumerable<string> TensorNames => _tensors.Keys;

    /// <summary>Opens a model folder and validates config.json and every safetensors header.</summary>
    /// <exception cref="LookaheadException">A file is missing, truncated or inconsistent (the message names it).</exception>
    public static ModelCheckpoint Open(string folder)
    {
        if (!Directory.Exists(folder)) throw new LookaheadException($"model folder not found: '{folder}'");
        ModelConfig config = ModelConfig.Load(System.IO.Path.Combine(folder, "config.json"));

        var files = new List<SafeTensorsFile>();
        var tensors = new Dictionary<string, (SafeTensorsFile, TensorInfo)>(StringComparer.Ordinal);
        try
        {
            string single = System.IO.Path.Combine(folder, "model.safetensors");
            string index = System.IO.Path.Combine(folder, "model.safetensors.index.json");
            if (File.Exists(single))
            {
                SafeTensorsFile file = SafeTensorsFile.Open(single);
                files.Add(file);
                foreach (TensorInfo info in file.Tensors.Values) tensors[info.Name] = (file, info);
            }
            else if (File.Exists(index))
            {
                OpenShards(folder, index, files, tensors);
            }
            else
            {
                throw new LookaheadException(
                    $"model folder '{folder}' has neither model.safetensors nor model.safetensors.index.json");
            }
        }
        catch
        {
            foreach (SafeTensorsFile file in files) file.Dispose();
            throw;
        }
        return new ModelCheckpoint(folder, config, files, tensors);
    }

    /// <summary>Looks a tensor up by its Hugging Face name.</summary>
    public bool TryGetTensor(string name, out SafeTensorsFile file, out TensorInfo info)
    {
        if (_tensors.TryGetValue(name, out var entry))
        {
            (file, info) = entry;
            return true;
        }
        file = null!;
        info = null!;
        return false;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (SafeTensorsFile file in _files) file.Dispose();
        _files.Clear();
    }

    private static void OpenShards(string folder, string indexPath, List<SafeTensorsFile> files,
        Dictionary<string, (SafeTensorsFile, TensorInfo)> tensors)
    {
        // Shard name per tensor, in the index's order; the shards are opened after the index is read whole.
        List<(string Tensor, string Shard)> entries = JsonFile.Read(indexPath, root =>
        {
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("weight_map", out JsonElement map) ||
                map.ValueKind != JsonValueKind.Object)
                throw new LookaheadException("model.safetensors.index.json has no 'weight_map' object");
            var list = new List<(string, string)>();
            foreach (JsonProperty entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new LookaheadException($"model.safetensors.index.json: weight_map entry '{entry.Name}' must name a file");
                list.Add((entry.Name, entry.Value.GetString()!));
            }
            return list;
        });

        var byShard = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        foreach ((string tensor, string shardName) in entries)
        {
            if (shardName.Length == 0 || System.IO.Path.GetFileName(shardName) != shardName)
                throw new LookaheadException($"model.safetensors.index.json: shard '{shardName}' must be a file name inside the model folder");
            if (!byShard.TryGetValue(shardName, out SafeTensorsFile? shard))
            {
                shard = SafeTensorsFile.Open(System.IO.Path.Combine(folder, shardName));
                files.Add(shard);
                byShard.Add(shardName, shard);
            }
            if (!shard.Tensors.TryGetValue(tensor, out TensorInfo? info))
                throw new LookaheadException($"tensor '{tensor}' is listed in the index but missing from shard '{shardName}'");
            tensors[tensor] = (shard, info);
        }
    }
}
