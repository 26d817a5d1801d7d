using System.Text;

namespace Lookahead.Tokenization.Templates;

/// <summary>
/// Evaluates a parsed template. Scopes follow Jinja: a for loop's body (each pass) and a macro have their
/// own, an if does not; attribute access tries the attribute and then the key, subscription the other way
/// round; a missing name or key is <see cref="Undefined"/>.
/// </summary>
internal sealed class TemplateRenderer
{
    private const int MaxOutputChars = 64 * 1024 * 1024;

    // A render is bounded work: statements executed plus loop passes, and macro calls in progress.
    private const long MaxSteps = 10_000_000;
    private const int MaxCallDepth = 64;
    private long _steps;
    private int _callDepth;

    private readonly List<Dictionary<string, object?>> _scopes = [];
    private readonly Func<DateTime> _clock;
    private readonly StringBuilder _output = new();

    private sealed class LoopControl(bool isBreak) : Exception
    {
        public bool IsBreak { get; } = isBreak;
    }

    public TemplateRenderer(Dictionary<string, object?> context, Func<DateTime> clock)
    {
        _clock = clock;
        _scopes.Add(Globals());
        _scopes.Add(new Dictionary<string, object?>(context));
    }

    public string Render(List<Node> nodes)
    {
        Execute(nodes);
        return _output.ToString();
    }

    private void Execute(List<Node> nodes)
    {
        foreach (Node node in nodes) Execute(node);
    }

    private void Execute(Node node)
    {
        CountStep();
        switch (node)
        {
            case TextNode text: Write(text.Text); break;
            case OutputNode output: Write(TemplateValues.Str(Evaluate(output.Value))); break;
            case IfNode conditional:
                foreach ((Expression condition, List<Node> body) in conditional.Branches)
                {
                    if (TemplateValues.Truthy(Evaluate(condition))) { Execute(body); return; }
                }
                if (conditional.Otherwise is not null) Execute(conditional.Otherwise);
                break;
            case ForNode loop: ExecuteFor(loop); break;
            case SetNode set: ExecuteSet(set); break;
            case MacroNode macro: _scopes[^1][macro.Name] = MakeMacro(macro); break;
            case LoopControlNode control: throw new LoopControl(control.Break);
            case BlockNode block: Execute(block.Body); break;
            default: throw new TemplateException($"cannot execute {node.GetType().Name}");
        }
    }

    private void CountStep()
    {
        if (++_steps > MaxSteps) throw new TemplateException($"the template runs more than {MaxSteps} statements");
    }

    private void Write(string text)
    {
        if (_output.Length + text.Length > MaxOutputChars) throw new TemplateException($"the template's output exceeds {MaxOutputChars} characters");
        _output.Append(text);
    }

    private void ExecuteFor(ForNode loop)
    {
        List<object?> source = TemplateValues.Iterate(Evaluate(loop.Iterable));
        var items = new List<object?>();
        foreach (object? item in source)
        {
            if (loop.Filter is null) { items.Add(item); continue; }
            _scopes.Add(new Dictionary<string, object?>());
            Bind(loop.Targets, item);
            bool keep = TemplateValues.Truthy(Evaluate(loop.Filter));
            _scopes.RemoveAt(_scopes.Count - 1);
            if (keep) items.Add(item);
        }
        if (items.Count == 0)
        {
            if (loop.Otherwise is not null) Execute(loop.Otherwise);
            return;
        }
        for (int i = 0; i < items.Count; i++)
        {
            CountStep();
            _scopes.Add(new Dictionary<string, object?> { ["loop"] = LoopInfo(items, i) });
            Bind(loop.Targets, items[i]);
            try
            {
                Execute(loop.Body);
            }
            catch (LoopControl control)
            {
                if (control.IsBreak) { _scopes.RemoveAt(_scopes.Count - 1); break; }
            }
            _scopes.RemoveAt(_scopes.Count - 1);
        }
    }

    private static OrderedDictionary<string, object?> LoopInfo(List<object?> items, int i) => new()
    {
        ["index"] = (long)(i + 1),
        ["index0"] = (long)i,
        ["revindex"] = (long)(items.Count - i),
        ["revindex0"] = (long)(items.Count - i - 1),
        ["first"] = i == 0,
        ["last"] = i == items.Count - 1,
        ["length"] = (long)items.Count,
        ["previtem"] = i > 0 ? items[i - 1] : new Undefined("loop.previtem"),
        ["nextitem"] = i + 1 < items.Count ? items[i + 1] : new Undefined("loop.nextitem"),
    };

    private void Bind(List<string> targets, object? value)
    {
        if (targets.Count == 1) { _scopes[^1][targets[0]] = value; return; }
        List<object?> parts = TemplateValues.Iterate(value);
        if (parts.Count != targets.Count) throw new TemplateException($"cannot unpack {parts.Count} values into {targets.Count} names");
        for (int i = 0; i < targets.Count; i++) _scopes[^1][targets[i]] = parts[i];
    }

    private void ExecuteSet(SetNode set)
    {
        object? value;
        if (set.Value is not null) value = Evaluate(set.Value);
        else
        {
            int mark = _output.Length;
            Execute(set.Body!);
            value = _output.ToString(mark, _output.Length - mark);
            _output.Length = mark;
        }
        if (set.Attribute is not null)
        {
            if (Lookup(set.Targets[0]) is not Namespace ns) throw new TemplateException($"cannot assign an attribute of '{set.Targets[0]}', which is not a namespace");
            ns.Values[set.Attribute] = value;
            return;
        }
        Bind(set.Targets, value);
    }

    private Callable MakeMacro(MacroNode macro) => (arguments, keywords) =>
    {
        var scope = new Dictionary<string, object?>();
        for (int i = 0; i < macro.Parameters.Count; i++)
        {
            (string name, Expression? fallback) = macro.Parameters[i];
            scope[name] = i < arguments.Count ? arguments[i]
                : keywords.TryGetValue(name, out object? given) ? given
                : fallback is not null ? Evaluate(fallback) : new Undefined(name);
        }
        int mark = _output.Length;
        if (++_callDepth > MaxCallDepth) throw new TemplateException($"macros call each other deeper than {MaxCallDepth} levels");
        _scopes.Add(scope);
        try
        {
            Execute(macro.Body);
        }
        finally
        {
            _scopes.RemoveAt(_scopes.Count - 1);
            _callDepth--;
        }
        string text = _output.ToString(mark, _output.Length - mark);
        _output.Length = mark;
        return text;
    };

    private object? Lookup(string name)
    {
        for (int i = _scopes.Count - 1; i >= 0; i--)
            if (_scopes[i].TryGetValue(name, out object? value)) return value;
        return new Undefined(name);
    }

    // ---- expressions ----

    private object? Evaluate(Expression expression)
    {
        switch (expression)
        {
            case Literal literal: return literal.Value;
            case Name name: return Lookup(name.Identifier);
            case ListExpression list: return list.Items.Select(Evaluate).ToList();
            case DictExpression dict:
                return TemplateValues.ToDictionary(dict.Items.Select(p =>
                    (Evaluate(p.Key) as string ?? throw new TemplateException("dict keys must be strings"), Evaluate(p.Value))));
            case Attribute attribute: return GetAttribute(Evaluate(attribute.Target), attribute.Name);
            case Index index: return GetItem(Evaluate(index.Target), Evaluate(index.Key));
            case Slice slice:
                return SliceValue(Evaluate(slice.Target), OptionalLong(slice.Start), OptionalLong(slice.Stop), OptionalLong(slice.Step));
            case Call call:
                object? callee = Evaluate(call.Callee);
                if (callee is Undefined u) throw u.Error();
                if (callee is not Callable function) throw new TemplateException($"{TemplateValues.TypeName(callee)} is not callable");
                return function(call.Arguments.Select(Evaluate).ToList(), Keywords(call.Keywords));
            case Filter filter:
                return TemplateFilters.Apply(filter.Name, Evaluate(filter.Value), filter.Arguments.Select(Evaluate).ToList(),
                    Keywords(filter.Keywords));
            case Test test:
                bool result = TemplateFilters.Test(test.Name, Evaluate(test.Value), test.Arguments.Select(Evaluate).ToList());
                return result != test.Negated;
            case Unary unary:
                object? operand = Evaluate(unary.Operand);
                return unary.Operator == "not" ? !TemplateValues.Truthy(operand) : Negate(operand);
            case Binary binary: return EvaluateBinary(binary);
            case Conditional conditional:
                return TemplateValues.Truthy(Evaluate(conditional.Condition)) ? Evaluate(conditional.Then)
                    : conditional.Otherwise is null ? new Undefined("conditional expression") : Evaluate(conditional.Otherwise);
            default: throw new TemplateException($"cannot evaluate {expression.GetType().Name}");
        }
    }

    private Dictionary<string, object?> Keywords(List<(string Name, Expression Value)> keywords)
    {
        var values = new Dictionary<string, object?>();
        foreach ((string name, Expression value) in keywords)
            if (!values.TryAdd(name, Evaluate(value))) throw new TemplateException($"the keyword argument '{name}' is given twice");
        return values;
    }

    private long? OptionalLong(Expression? expression) =>
        expression is null ? null : Evaluate(expression) is object value and not null ? TemplateValues.ToLong(value) : null;

    private static object? Negate(object? value) => value switch
    {
        double d => (object)-d,
        _ when TemplateValues.IsInteger(value) => (object)-TemplateValues.ToLong(value),
        _ => throw new TemplateException($"bad operand type for unary -: {TemplateValues.TypeName(value)}"),
    };

    private object? EvaluateBinary(Binary binary)
    {
        if (binary.Operator == "and")
        {
            object? left = Evaluate(binary.Left);
            return TemplateValues.Truthy(left) ? Evaluate(binary.Right) : left;
        }
        if (binary.Operator == "or")
        {
            object? left = Evaluate(binary.Left);
            return TemplateValues.Truthy(left) ? left : Evaluate(binary.Right);
        }
        object? a = Evaluate(binary.Left), b = Evaluate(binary.Right);
        switch (binary.Operator)
        {
            case "==": return TemplateValues.Equals(a, b);
            case "!=": return !TemplateValues.Equals(a, b);
            case "<": return TemplateValues.Compare(Defined(a), Defined(b)) < 0;
            case ">": return TemplateValues.Compare(Defined(a), Defined(b)) > 0;
            case "<=": return TemplateValues.Compare(Defined(a), Defined(b)) <= 0;
            case ">=": return TemplateValues.Compare(Defined(a), Defined(b)) >= 0;
            case "in": return TemplateValues.Contains(b, a);
            case "not in": return !TemplateValues.Contains(b, a);
            case "~": return TemplateValues.Str(a) + TemplateValues.Str(b);
        }
        a = Defined(a);
        b = Defined(b);
        if (binary.Operator == "+")
        {
            if (a is string x && b is string y) return x + y;
            if (a is List<object?> p && b is List<object?> q) return p.Concat(q).ToList();
        }
        if (binary.Operator == "*" && (a is string || b is string) && (TemplateValues.IsInteger(a) || TemplateValues.IsInteger(b)))
        {
            string text = a as string ?? (string)b!;
            long count = TemplateValues.ToLong(a is string ? b : a);
            return count <= 0 ? "" : (long)text.Length * count > MaxOutputChars ? throw new TemplateException("string repetition too large") : string.Concat(Enumerable.Repeat(text, (int)count));
        }
        if (!TemplateValues.IsNumber(a) || !TemplateValues.IsNumber(b))
            throw new TemplateException($"unsupported operand types for {binary.Operator}: {TemplateValues.TypeName(a)} and {TemplateValues.TypeName(b)}");
        bool integers = TemplateValues.IsInteger(a) && TemplateValues.IsInteger(b);
        if (integers)
        {
            long x = TemplateValues.ToLong(a), y = TemplateValues.ToLong(b);
            switch (binary.Operator)
            {
                case "+": return x + y;
                case "-": return x - y;
                case "*": return x * y;
                case "/": return y == 0 ? throw DivisionByZero() : (double)x / y;
                case "//": return y == 0 ? throw DivisionByZero() : FloorDivide(x, y);
                case "%": return y == 0 ? throw DivisionByZero() : x - y * FloorDivide(x, y);
                case "**": return y >= 0 ? (object)(long)Math.Pow(x, y) : Math.Pow(x, y);
            }
        }
        double u = TemplateValues.ToDouble(a), v = TemplateValues.ToDouble(b);
        return binary.Operator switch
        {
            "+" => u + v,
            "-" => u - v,
            "*" => u * v,
            "/" => v == 0 ? throw DivisionByZero() : u / v,
            "//" => v == 0 ? throw DivisionByZero() : Math.Floor(u / v),
            "%" => v == 0 ? throw DivisionByZero() : u - v * Math.Floor(u / v),
            "**" => Math.Pow(u, v),
            _ => throw new TemplateException($"unknown operator {binary.Operator}"),
        };
    }

    private static long FloorDivide(long x, long y) => x / y - ((x % y != 0 && (x < 0) != (y < 0)) ? 1 : 0);

    private static TemplateException DivisionByZero() => new("division by zero");

    private static object? Defined(object? value) => value is Undefined u ? throw u.Error() : value;

    private static object? GetAttribute(object? target, string name)
    {
        switch (target)
        {
            case Undefined u: throw u.Error();
            case Namespace ns: return ns.Values.TryGetValue(name, out object? value) ? value : new Undefined(name);
        }
        if (TemplateMethods.Bind(target, name) is Callable method) return method;
        return target is OrderedDictionary<string, object?> dict && dict.TryGetValue(name, out object? item) ? item : new Undefined(name);
    }

    private static object? GetItem(object? target, object? key)
    {
        switch (target)
        {
            case Undefined u: throw u.Error();
            case OrderedDictionary<string, object?> dict:
                if (key is string name && dict.TryGetValue(name, out object? value)) return value;
                break;
            case List<object?> list when TemplateValues.IsInteger(key):
                long i = TemplateValues.ToLong(key);
                if (i < 0) i += list.Count;
                return i >= 0 && i < list.Count ? list[(int)i] : new Undefined($"index {key}");
            case string s when TemplateValues.IsInteger(key):
                List<object?> characters = TemplateValues.Iterate(s);
                long j = TemplateValues.ToLong(key);
                if (j < 0) j += characters.Count;
                return j >= 0 && j < characters.Count ? characters[(int)j] : new Undefined($"index {key}");
            case Namespace ns when key is string attribute:
                return ns.Values.TryGetValue(attribute, out object? nsValue) ? nsValue : new Undefined(attribute);
        }
        if (key is string methodName && TemplateMethods.Bind(target, methodName) is Callable method) return method;
        return new Undefined(TemplateValues.Str(key));
    }

    private static object? SliceValue(object? target, long? start, long? stop, long? step)
    {
        List<object?> items = target switch
        {
            List<object?> list => list,
            string s => TemplateValues.Iterate(s),
            Undefined u => throw u.Error(),
            _ => throw new TemplateException($"{TemplateValues.TypeName(target)} cannot be sliced"),
        };
        long n = items.Count, by = step ?? 1;
        if (by == 0) throw new TemplateException("slice step cannot be zero");
        long Adjust(long? index, long fallback)
        {
            if (index is not long i) return fallback;
            if (i < 0) i = Math.Max(i + n, by < 0 ? -1 : 0);
            return Math.Min(i, by < 0 ? n - 1 : n);
        }
        long from = Adjust(start, by < 0 ? n - 1 : 0), to = Adjust(stop, by < 0 ? -1 : n);
        var result = new List<object?>();
        for (long i = from; by > 0 ? i < to : i > to; i += by) result.Add(items[(int)i]);
        return target is string ? string.Concat(result.Cast<string>()) : result;
    }

    // ---- globals ----

    private Dictionary<string, object?> Globals() => new()
    {
        ["raise_exception"] = (Callable)((arguments, _) =>
            throw new TemplateException(arguments.Count > 0 ? TemplateValues.Str(arguments[0]) : "the chat template refused the messages", raisedByTemplate: true)),
        ["strftime_now"] = (Callable)((arguments, _) => PythonTime.Format(_clock(), arguments.Count > 0 ? TemplateValues.Str(arguments[0]) : "")),
        ["namespace"] = (Callable)((arguments, keywords) =>
        {
            var ns = new Namespace();
            if (arguments.Count > 0 && arguments[0] is OrderedDictionary<string, object?> initial)
                foreach ((string key, object? value) in initial) ns.Values[key] = value;
            foreach ((string key, object? value) in keywords) ns.Values[key] = value;
            return ns;
        }),
        ["range"] = (Callable)((arguments, _) =>
        {
            long start = 0, stop, step = 1;
            if (arguments.Count == 1) stop = TemplateValues.ToLong(arguments[0]);
            else if (arguments.Count >= 2) { start = TemplateValues.ToLong(arguments[0]); stop = TemplateValues.ToLong(arguments[1]); if (arguments.Count > 2) step = TemplateValues.ToLong(arguments[2]); }
            else throw new TemplateException("range() needs an argument");
            if (step == 0) throw new TemplateException("range() step cannot be zero");
            var numbers = new List<object?>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step)
            {
                if (numbers.Count >= 1_000_000) throw new TemplateException("range() is too long");
                numbers.Add(i);
            }
            return numbers;
        }),
        ["dict"] = (Callable)((_, keywords) => TemplateValues.ToDictionary(keywords.Select(k => (k.Key, k.Value)))),
    };
}
