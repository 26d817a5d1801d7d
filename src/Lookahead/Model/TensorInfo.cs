namespace Lookahead.Model;

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed record TensorInfo(string Name, TensorDtype Dtype, long[] Shape, long DataOffset, long ByteLength)
{
    /// <summary>Number of elements (1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (product, dim) => product * dim);
}
