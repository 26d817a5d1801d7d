using System.Text;
using Lookahead.Model;

namespace Lookahead.Tests;

/// <summary>The safetensors parser on hand-made files, valid and broken.</summary>
public class SafeTensorsTests
{
    private string _directory = null!;

    [SetUp]
    public void SetUp() => Directory.CreateDirectory(_directory = Path.Combine(Path.GetTempPath(), "lookahead-st", Guid.NewGuid().ToString("N")));

    [TearDown]
    public void TearDown() => Directory.Delete(_directory, recursive: true);

    private string WriteRaw(byte[] bytes)
    {
        string path = Path.Combine(_directory, "model.safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private string Write(string header, int dataBytes, ulong? declaredLength = null)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BitConverter.GetBytes(declaredLength ?? (ulong)json.Length).CopyTo(bytes, 0);
        json.CopyTo(bytes, 8);
        for (int i = 0; i < dataBytes; i++) bytes[8 + json.Length + i] = (byte)(i * 7 + 1);
        return WriteRaw(bytes);
    }

    private static void ExpectError(string path, string fragment)
    {
        var error = Assert.Throws<LookaheadException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.That(error!.Message, Does.Contain(fragment));
    }

    [Test]
    public void ReadsAValidFileWithMetadataAndExactBytes()
    {
        string path = Write("""{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}}""", 22);
        using SafeTensorsFile file = SafeTensorsFile.Open(path);
        Assert.That(file.Metadata["format"], Is.EqualTo("pt"));
        Assert.That(file.Tensors.Keys, Is.EquivalentTo(new[] { "a", "b" }));
        TensorInfo b = file.Tensors["b"];
        Assert.That(b.Dtype, Is.EqualTo(TensorDtype.BF16));
        Assert.That(b.Shape, Is.EqualTo(new long[] { 3 }));
        byte[] all = File.ReadAllBytes(path);
        long dataStart = all.Length - 22;
        Assert.That(file.GetSpan(b).ToArray(), Is.EqualTo(all[(int)(dataStart + 16)..]));
    }

    [Test]
    public void WriterOutputRoundTrips()
    {
        string path = Path.Combine(_directory, "w.safetensors");
        new SafeTensorsWriter().Add("x", TensorDtype.F16, [2, 3], new byte[12]).Add("y", TensorDtype.F32, [1], [1, 2, 3, 4]).Write(path);
        using SafeTensorsFile file = SafeTensorsFile.Open(path);
        Assert.That(file.GetSpan(file.Tensors["y"]).ToArray(), Is.EqualTo(new byte[] { 1, 2, 3, 4 }));
        Assert.That(file.Tensors["x"].Shape, Is.EqualTo(new long[] { 2, 3 }));
    }

    [Test] public void Truncated() => ExpectError(WriteRaw([1, 2, 3]), "truncated");
    [Test] public void HeaderLongerThanFile() => ExpectError(Write("{}", 0, declaredLength: 4096), "does not fit");
    [Test] public void HeaderNotJson() => ExpectError(Write("{not json", 0), "not valid JSON");
    [Test] public void HeaderNotObject() => ExpectError(Write("[1,2]", 0), "JSON object");
    [Test] public void UnknownDtype() => ExpectError(Write("""{"a":{"dtype":"F12","shape":[1],"data_offsets":[0,2]}}""", 2), "unknown dtype 'F12'");
    [Test] public void OffsetsOutOfRange() => ExpectError(Write("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4), "outside the data section");
    [Test] public void OffsetsReversed() => ExpectError(Write("""{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}""", 4), "outside the data section");
    [Test] public void ShapeDisagreesWithBytes() => ExpectError(Write("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8), "needs 12");
    [Test] public void Overlapping() => ExpectError(Write("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12), "overlap");
    [Test] public void NegativeDimension() => ExpectError(Write("""{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", 4), "invalid shape");
    [Test] public void MissingOffsets() => ExpectError(Write("""{"a":{"dtype":"F32","shape":[1]}}""", 4), "data_offsets");
    [Test] public void DuplicateTensor() => ExpectError(Write("""{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}""", 2), "appears twice");
    [Test] public void MetadataNotStrings() => ExpectError(Write("""{"__metadata__":{"n":1}}""", 0), "__metadata__");
}
