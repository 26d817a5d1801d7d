using System.Runtime.InteropServices;

namespace Lookahead.Drafting;

/// <summary>
/// Open-addressed hash map (parent node, token) -> child node in unmanaged memory, with linear probing
/// and backward-shift deletion (no tombstones), so a lookup costs one hash and a short probe whether a
/// node has one child or thousands.
/// </summary>
internal unsafe struct EdgeTable : IDisposable
{
    private const long EmptyKey = -1;

    private long* _keys;
    private int* _values;
    private int _mask;
    private int _count;

    public static EdgeTable Create(int capacity)
    {
        var table = new EdgeTable();
        table.Allocate(Math.Max(16, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)capacity)));
        return table;
    }

    public readonly int Count => _count;
    public readonly long BytesAllocated => (long)(_mask + 1) * (sizeof(long) + sizeof(int));

    public readonly int Find(int parent, int token)
    {
        long key = Key(parent, token);
        for (int slot = Slot(key); ; slot = (slot + 1) & _mask)
        {
            long existing = _keys[slot];
            if (existing == key) return _values[slot];
            if (existing == EmptyKey) return -1;
        }
    }

    public void Add(int parent, int token, int child)
    {
        if ((_count + 1) * 2 > _mask + 1) Grow();
        long key = Key(parent, token);
        int slot = Slot(key);
        while (_keys[slot] != EmptyKey) slot = (slot + 1) & _mask;
        _keys[slot] = key;
        _values[slot] = child;
        _count++;
    }

    public void Remove(int parent, int token)
    {
        long key = Key(parent, token);
        int slot = Slot(key);
        while (_keys[slot] != key)
        {
            if (_keys[slot] == EmptyKey) return;
            slot = (slot + 1) & _mask;
        }
        // Backward shift: move later entries of the probe run into the hole when their home allows it.
        int hole = slot;
        for (int next = (hole + 1) & _mask; _keys[next] != EmptyKey; next = (next + 1) & _mask)
        {
            int home = Slot(_keys[next]);
            bool movable = hole <= next ? home <= hole || home > next : home <= hole && home > next;
            if (!movable) continue;
            _keys[hole] = _keys[next];
            _values[hole] = _values[next];
            hole = next;
        }
        _keys[hole] = EmptyKey;
        _count--;
    }

    public void Clear()
    {
        new Span<long>(_keys, _mask + 1).Fill(EmptyKey);
        _count = 0;
    }

    public void Dispose()
    {
        NativeMemory.Free(_keys);
        NativeMemory.Free(_values);
        _keys = null;
        _values = null;
    }

    private static long Key(int parent, int token) => ((long)parent << 32) | (uint)token;

    private readonly int Slot(long key) => (int)((ulong)(key * unchecked((long)0x9E3779B97F4A7C15)) >> 32) & _mask;

    private void Allocate(int capacity)
    {
        _keys = (long*)NativeMemory.Alloc((nuint)capacity, sizeof(long));
        _values = (int*)NativeMemory.Alloc((nuint)capacity, sizeof(int));
        _mask = capacity - 1;
        _count = 0;
        new Span<long>(_keys, capacity).Fill(EmptyKey);
    }

    private void Grow()
    {
        long* oldKeys = _keys;
        int* oldValues = _values;
        int oldCapacity = _mask + 1;
        Allocate(oldCapacity * 2);
        for (int i = 0; i < oldCapacity; i++)
        {
            if (oldKeys[i] == EmptyKey) continue;
            int slot = Slot(oldKeys[i]);
            while (_keys[slot] != EmptyKey) slot = (slot + 1) & _mask;
            _keys[slot] = oldKeys[i];
            _values[slot] = oldValues[i];
            _count++;
        }
        NativeMemory.Free(oldKeys);
        NativeMemory.Free(oldValues);
    }
}
