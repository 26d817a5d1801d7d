namespace Lookahead.Tokenization.Templates;

/// <summary>
/// Parses the pieces of a template into statements and expressions, with Jinja's precedence: conditional
/// expressions, or, and, not, comparisons (in, not in), + and -, ~, * / // %, **, unary minus, then
/// postfix access, calls, filters (|) and tests (is), which bind tightest.
/// </summary>
internal sealed class TemplateParser
{
    private readonly List<Piece> _pieces;
    private int _piece;
    private List<Token> _tokens = [];
    private int _at;
    private int _depth;

    /// <summary>Deepest nesting of statements and of expressions (real templates nest a handful).</summary>
    private const int MaxDepth = 200;

    private TemplateParser(List<Piece> pieces) => _pieces = pieces;

    public static List<Node> Parse(string source)
    {
        var parser = new TemplateParser(TemplateLexer.Split(source));
        List<Node> body = parser.ParseBody(out string? end);
        if (end is not null) throw new TemplateException($"unexpected {{% {end} %}}");
        return body;
    }

    // Statements up to a {% end... %} / {% else %} style tag (returned in end, its tokens current).
    private List<Node> ParseBody(out string? end, params string[] terminators)
    {
        using var nesting = Nest();
        var body = new List<Node>();
        while (_piece < _pieces.Count)
        {
            Piece piece = _pieces[_piece++];
            if (piece.IsText) { body.Add(new TextNode(piece.Text)); continue; }
            Begin(piece.Tokens);
            if (piece.IsOutput)
            {
                body.Add(new OutputNode(ParseExpression()));
                ExpectEnd();
                continue;
            }
            Token keyword = Next();
            if (keyword.Kind != TokenKind.Name) throw new TemplateException("a statement tag must start with a keyword");
            if (terminators.Contains(keyword.Text)) { end = keyword.Text; return body; }
            body.Add(keyword.Text switch
            {
                "if" => ParseIf(),
                "for" => ParseFor(),
                "set" => ParseSet(),
                "macro" => ParseMacro(),
                "break" or "continue" => EndThen(new LoopControlNode(keyword.Text == "break")),
                "generation" => EndThen(new BlockNode(ParseBlockUntil("endgeneration"))),
                _ => throw new TemplateException($"the statement {{% {keyword.Text} %}} is not supported"),
            });
        }
        end = null;
        if (terminators.Length > 0) throw new TemplateException($"the template ends before {{% {terminators[^1]} %}}");
        return body;
    }

    private Node EndThen(Node node)
    {
        ExpectEnd();
        return node;
    }

    private List<Node> ParseBlockUntil(string terminator)
    {
        List<Node> body = ParseBody(out _, terminator);
        ExpectEnd();
        return body;
    }

    private IfNode ParseIf()
    {
        var branches = new List<(Expression, List<Node>)>();
        Expression condition = ParseExpression();
        ExpectEnd();
        while (true)
        {
            List<Node> body = ParseBody(out string? end, "elif", "else", "endif");
            branches.Add((condition, body));
            if (end == "elif") { condition = ParseExpression(); ExpectEnd(); continue; }
            if (end == "else")
            {
                ExpectEnd();
                List<Node> otherwise = ParseBody(out _, "endif");
                ExpectEnd();
                return new IfNode(branches, otherwise);
            }
            ExpectEnd();
            return new IfNode(branches, null);
        }
    }

    private ForNode ParseFor()
    {
        var targets = new List<string> { ExpectName() };
        while (Accept(",")) targets.Add(ExpectName());
        Expect("in");
        Expression iterable = ParseExpression(allowConditional: false);
        Expression? filter = Accept("if") ? ParseExpression(allowConditional: false) : null;
        if (Peek().Is("recursive")) throw new TemplateException("recursive loops are not supported");
        ExpectEnd();
        List<Node> body = ParseBody(out string? end, "else", "endfor");
        List<Node>? otherwise = null;
        ExpectEnd();
        if (end == "else")
        {
            otherwise = ParseBody(out _, "endfor");
            ExpectEnd();
        }
        return new ForNode(targets, iterable, filter, body, otherwise);
    }

    private SetNode ParseSet()
    {
        var targets = new List<string> { ExpectName() };
        string? attribute = null;
        if (Accept(".")) attribute = ExpectName();
        else while (Accept(",")) targets.Add(ExpectName());
        if (Accept("="))
        {
            Expression value = ParseTupleOrExpression();
            ExpectEnd();
            return new SetNode(targets, attribute, value, null);
        }
        ExpectEnd();
        return new SetNode(targets, attribute, null, ParseBlockUntil("endset"));
    }

    private MacroNode ParseMacro()
    {
        string name = ExpectName();
        Expect("(");
        var parameters = new List<(string, Expression?)>();
        while (!Accept(")"))
        {
            if (parameters.Count > 0) Expect(",");
            string parameter = ExpectName();
            parameters.Add((parameter, Accept("=") ? ParseExpression() : null));
        }
        ExpectEnd();
        return new MacroNode(name, parameters, ParseBlockUntil("endmacro"));
    }

    // ---- expressions ----

    private Expression ParseTupleOrExpression()
    {
        Expression first = ParseExpression();
        if (!Peek().Is(",")) return first;
        var items = new List<Expression> { first };
        while (Accept(",") && !AtEnd()) items.Add(ParseExpression());
        return new ListExpression(items, Tuple: true);
    }

    private Expression ParseExpression(bool allowConditional = true)
    {
        using var nesting = Nest();
        Expression value = ParseOr();
        if (!allowConditional) return value;
        while (Accept("if"))
        {
            Expression condition = ParseOr();
            Expression? otherwise = Accept("else") ? ParseExpression() : null;
            value = new Conditional(condition, value, otherwise);
        }
        return value;
    }

    private Expression ParseOr()
    {
        Expression left = ParseAnd();
        while (Accept("or")) left = new Binary("or", left, ParseAnd());
        return left;
    }

    private Expression ParseAnd()
    {
        Expression left = ParseNot();
        while (Accept("and")) left = new Binary("and", left, ParseNot());
        return left;
    }

    private Expression ParseNot()
    {
        using var nesting = Nest();
        return Accept("not") ? new Unary("not", ParseNot()) : ParseComparison();
    }

    private Expression ParseComparison()
    {
        Expression left = ParseAdditive();
        while (true)
        {
            Token token = Peek();
            if (token.Kind == TokenKind.Operator && token.Text is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                _at++;
                left = new Binary(token.Text, left, ParseAdditive());
            }
            else if (token.Is("in")) { _at++; left = new Binary("in", left, ParseAdditive()); }
            else if (token.Is("not") && PeekAt(1).Is("in")) { _at += 2; left = new Binary("not in", left, ParseAdditive()); }
            else return left;
        }
    }

    private Expression ParseAdditive()
    {
        Expression left = ParseConcat();
        while (Peek().Kind == TokenKind.Operator && Peek().Text is "+" or "-")
            left = new Binary(Next().Text, left, ParseConcat());
        return left;
    }

    private Expression ParseConcat()
    {
        Expression left = ParseMultiplicative();
        while (Accept("~")) left = new Binary("~", left, ParseMultiplicative());
        return left;
    }

    private Expression ParseMultiplicative()
    {
        Expression left = ParsePower();
        while (Peek().Kind == TokenKind.Operator && Peek().Text is "*" or "/" or "//" or "%")
            left = new Binary(Next().Text, left, ParsePower());
        return left;
    }

    private Expression ParsePower()
    {
        Expression left = ParseUnary(withFilters: true);
        while (Accept("**")) left = new Binary("**", left, ParseUnary(withFilters: true));
        return left;
    }

    private Expression ParseUnary(bool withFilters)
    {
        using var nesting = Nest();
        Expression value;
        if (Accept("-")) value = new Unary("-", ParseUnary(withFilters: false));
        else if (Accept("+")) value = ParseUnary(withFilters: false);
        else value = ParsePostfix(ParsePrimary());
        return withFilters ? ParseFiltersAndTests(value) : value;
    }

    private Expression ParsePrimary()
    {
        Token token = Next();
        switch (token.Kind)
        {
            case TokenKind.String:
                string text = (string)token.Value!;
                while (Peek().Kind == TokenKind.String) text += (string)Next().Value!;  // adjacent literals join
                return new Literal(text);
            case TokenKind.Integer or TokenKind.Float:
                return new Literal(token.Value);
            case TokenKind.Name:
                return token.Text switch
                {
                    "true" or "True" => new Literal(true),
                    "false" or "False" => new Literal(false),
                    "none" or "None" => new Literal(null),
                    _ => new Name(token.Text),
                };
        }
        if (token.Is("("))
        {
            if (Accept(")")) return new ListExpression([], Tuple: true);
            Expression inner = ParseExpression();
            if (!Peek().Is(",")) { Expect(")"); return inner; }
            var items = new List<Expression> { inner };
            while (Accept(",") && !Peek().Is(")")) items.Add(ParseExpression());
            Expect(")");
            return new ListExpression(items, Tuple: true);
        }
        if (token.Is("["))
        {
            var items = new List<Expression>();
            ParseItemsUntil("]", () => items.Add(ParseExpression()));
            return new ListExpression(items, Tuple: false);
        }
        if (token.Is("{"))
        {
            var items = new List<(Expression, Expression)>();
            ParseItemsUntil("}", () =>
            {
                Expression key = ParseExpression();
                Expect(":");
                items.Add((key, ParseExpression()));
            });
            return new DictExpression(items);
        }
        throw new TemplateException($"unexpected '{token.Text}' in an expression");
    }

    private Expression ParsePostfix(Expression value)
    {
        while (true)
        {
            if (Accept("."))
            {
                Token name = Next();
                if (name.Kind is not (TokenKind.Name or TokenKind.Integer)) throw new TemplateException("expected an attribute name after '.'");
                value = name.Kind == TokenKind.Integer ? new Index(value, new Literal(name.Value)) : new Attribute(value, name.Text);
            }
            else if (Accept("[")) value = ParseSubscript(value);
            else if (Peek().Is("(")) value = ParseCall(value);
            else return value;
        }
    }

    private Expression ParseSubscript(Expression target)
    {
        Expression? start = Peek().Is(":") ? null : ParseExpression();
        if (Accept("]")) return new Index(target, start!);
        Expect(":");
        Expression? stop = Peek().Is(":") || Peek().Is("]") ? null : ParseExpression();
        Expression? step = null;
        if (Accept(":") && !Peek().Is("]")) step = ParseExpression();
        Expect("]");
        return new Slice(target, start, stop, step);
    }

    private Call ParseCall(Expression callee)
    {
        (List<Expression> arguments, List<(string, Expression)> keywords) = ParseArguments();
        return new Call(callee, arguments, keywords);
    }

    private (List<Expression>, List<(string, Expression)>) ParseArguments()
    {
        Expect("(");
        var arguments = new List<Expression>();
        var keywords = new List<(string, Expression)>();
        ParseItemsUntil(")", () =>
        {
            if (Peek().Kind == TokenKind.Name && PeekAt(1).Is("="))
            {
                string name = Next().Text;
                _at++;
                keywords.Add((name, ParseExpression()));
            }
            else arguments.Add(ParseExpression());
        });
        return (arguments, keywords);
    }

    // Comma-separated items up to the closing token, a trailing comma allowed (lists, dicts, call arguments).
    private void ParseItemsUntil(string closing, Action parseItem)
    {
        for (bool first = true; !Accept(closing); first = false)
        {
            if (!first) { Expect(","); if (Accept(closing)) return; }
            parseItem();
        }
    }

    private Expression ParseFiltersAndTests(Expression value)
    {
        while (true)
        {
            if (Accept("|"))
            {
                string name = ExpectDottedName();
                (List<Expression> arguments, List<(string, Expression)> keywords) = Peek().Is("(") ? ParseArguments() : ([], []);
                value = new Filter(value, name, arguments, keywords);
            }
            else if (Accept("is"))
            {
                bool negated = Accept("not");
                string name = ExpectDottedName();
                List<Expression> arguments = [];
                if (Peek().Is("(")) arguments = ParseArguments().Item1;
                else if (StartsArgument(Peek())) arguments = [ParsePostfix(ParsePrimary())];
                value = new Test(value, name, arguments, negated);
            }
            else if (Peek().Is("(")) value = ParseCall(value);
            else return value;
        }
    }

    // A test's single argument without parentheses ("is sameas false", "is divisibleby 3").
    private static bool StartsArgument(Token token) =>
        token.Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float ||
        token.Kind == TokenKind.Name && token.Text is not ("and" or "or" or "else" or "if" or "in" or "is" or "not") ||
        token.Is("[") || token.Is("{");

    private readonly struct Nesting(TemplateParser parser) : IDisposable
    {
        public void Dispose() => parser._depth--;
    }

    private Nesting Nest()
    {
        if (++_depth > MaxDepth) throw new TemplateException($"the template nests deeper than {MaxDepth} levels");
        return new Nesting(this);
    }

    // ---- tokens ----

    private void Begin(List<Token> tokens)
    {
        _tokens = tokens;
        _at = 0;
    }

    private bool AtEnd() => _at >= _tokens.Count;

    private Token Peek() => PeekAt(0);

    private Token PeekAt(int offset) => _at + offset < _tokens.Count ? _tokens[_at + offset] : new Token(TokenKind.End, "end of tag");

    private Token Next()
    {
        Token token = Peek();
        if (token.Kind == TokenKind.End) throw new TemplateException("a tag ends too early");
        _at++;
        return token;
    }

    private bool Accept(string text)
    {
        if (!Peek().Is(text)) return false;
        _at++;
        return true;
    }

    private void Expect(string text)
    {
        if (!Accept(text)) throw new TemplateException($"expected '{text}' but found '{Peek().Text}'");
    }

    private string ExpectName()
    {
        Token token = Next();
        if (token.Kind != TokenKind.Name) throw new TemplateException($"expected a name but found '{token.Text}'");
        return token.Text;
    }

    private string ExpectDottedName()
    {
        string name = ExpectName();
        while (Peek().Is(".") && PeekAt(1).Kind == TokenKind.Name) { _at++; name += "." + Next().Text; }
        return name;
    }

    private void ExpectEnd()
    {
        if (!AtEnd()) throw new TemplateException($"unexpected '{Peek().Text}' at the end of a tag");
    }
}
