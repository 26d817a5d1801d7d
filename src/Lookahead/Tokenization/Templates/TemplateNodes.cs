namespace Lookahead.Tokenization.Templates;

// The syntax tree of a template: statements (output, control flow) and expressions.

internal abstract record Node;

internal sealed record TextNode(string Text) : Node;

internal sealed record OutputNode(Expression Value) : Node;

internal sealed record IfNode(List<(Expression Condition, List<Node> Body)> Branches, List<Node>? Otherwise) : Node;

internal sealed record ForNode(List<string> Targets, Expression Iterable, Expression? Filter, List<Node> Body, List<Node>? Otherwise) : Node;

/// <summary>{% set name = value %} or {% set ns.attribute = value %} (Attribute not null), or a block set.</summary>
internal sealed record SetNode(List<string> Targets, string? Attribute, Expression? Value, List<Node>? Body) : Node;

internal sealed record MacroNode(string Name, List<(string Name, Expression? Default)> Parameters, List<Node> Body) : Node;

internal sealed record LoopControlNode(bool Break) : Node;

/// <summary>A block whose output passes through unchanged ({% generation %}, Hugging Face's marker).</summary>
internal sealed record BlockNode(List<Node> Body) : Node;

internal abstract record Expression;

internal sealed record Literal(object? Value) : Expression;

internal sealed record Name(string Identifier) : Expression;

internal sealed record ListExpression(List<Expression> Items, bool Tuple) : Expression;

internal sealed record DictExpression(List<(Expression Key, Expression Value)> Items) : Expression;

internal sealed record Attribute(Expression Target, string Name) : Expression;

internal sealed record Index(Expression Target, Expression Key) : Expression;

internal sealed record Slice(Expression Target, Expression? Start, Expression? Stop, Expression? Step) : Expression;

internal sealed record Call(Expression Callee, List<Expression> Arguments, List<(string Name, Expression Value)> Keywords) : Expression;

internal sealed record Filter(Expression Value, string Name, List<Expression> Arguments, List<(string Name, Expression Value)> Keywords) : Expression;

internal sealed record Test(Expression Value, string Name, List<Expression> Arguments, bool Negated) : Expression;

internal sealed record Unary(string Operator, Expression Operand) : Expression;

internal sealed record Binary(string Operator, Expression Left, Expression Right) : Expression;

internal sealed record Conditional(Expression Condition, Expression Then, Expression? Otherwise) : Expression;
