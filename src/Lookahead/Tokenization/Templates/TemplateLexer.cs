using System.Globalization;
using System.Text;

namespace Lookahead.Tokenization.Templates;

internal enum TokenKind { Name, String, Integer, Float, Operator, End }

internal readonly record struct Token(TokenKind Kind, string Text, object? Value = null)
{
    public bool Is(string text) => Kind is TokenKind.Operator or TokenKind.Name && Text == text;
}

/// <summary>A piece of the template: text, a {{ }} output or a {% %} statement (its tokens).</summary>
internal readonly record struct Piece(bool IsText, bool IsOutput, string Text, List<Token> Tokens);

/// <summary>
/// Cuts a template into text, outputs and statements the way Jinja's lexer does with Hugging Face's
/// settings: newlines normalized and the last one dropped, trim_blocks (the newline after a statement or
/// comment goes), lstrip_blocks (indentation before one goes), and "-"/"+" whitespace control.
/// </summary>
internal static class TemplateLexer
{
    private static readonly string[] s_operators =
        ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    public static List<Piece> Split(string source)
    {
        source = NormalizeNewlines(source);
        var pieces = new List<Piece>();
        int position = 0;
        bool lineStarting = true;
        bool stripNextWhitespace = false;
        while (position < source.Length)
        {
            int open = FindOpening(source, position);
            string text = source[position..(open < 0 ? source.Length : open)];
            if (stripNextWhitespace) text = text.TrimStart(PythonWhitespace);
            if (open < 0) { AddText(pieces, text); break; }

            char kind = source[open + 1];
            int inside = open + 2;
            char sign = inside < source.Length && source[inside] is '-' or '+' ? source[inside] : '\0';
            if (sign != '\0') inside++;
            if (sign == '-') text = text.TrimEnd(PythonWhitespace);
            else if (sign != '+' && kind != '{') text = StripIndentation(text, lineStarting);
            AddText(pieces, text);

            int close;
            List<Token> tokens = [];
            if (kind == '#')
            {
                close = source.IndexOf("#}", inside, StringComparison.Ordinal);
                if (close < 0) throw new TemplateException("a comment {# is never closed");
            }
            else close = Tokenize(source, inside, kind == '{' ? "}}" : "%}", tokens);
            bool rightStrip = close > inside && source[close - 1] == '-' && (kind == '#' || tokens.Count == 0 || tokens[^1].Text == "-");
            bool rightPlus = close > inside && source[close - 1] == '+';
            if (rightStrip && kind != '#') tokens.RemoveAt(tokens.Count - 1);
            if (rightPlus && kind != '#' && tokens.Count > 0 && tokens[^1].Text == "+") tokens.RemoveAt(tokens.Count - 1);
            position = close + 2;
            if (kind == '{') pieces.Add(new Piece(false, true, "", tokens));
            else if (kind == '%') pieces.Add(new Piece(false, false, "", tokens));
            stripNextWhitespace = rightStrip;
            lineStarting = false;
            if (!rightStrip && !rightPlus && kind != '{' && position < source.Length && source[position] == '\n')
            {
                position++;  // trim_blocks
                lineStarting = true;
            }
        }
        return pieces;
    }

    private static readonly char[] PythonWhitespace = TemplateMethods.Whitespace;

    private static void AddText(List<Piece> pieces, string text)
    {
        if (text.Length > 0) pieces.Add(new Piece(true, false, text, []));
    }

    // lstrip_blocks: spaces and tabs between the start of a line and a statement go.
    private static string StripIndentation(string text, bool lineStarting)
    {
        int lineStart = text.LastIndexOf('\n') + 1;
        if (lineStart == 0 && !lineStarting) return text;
        for (int i = lineStart; i < text.Length; i++) if (Array.IndexOf(PythonWhitespace, text[i]) < 0) return text;
        return text[..lineStart];
    }

    private static int FindOpening(string source, int from)
    {
        for (int i = source.IndexOf('{', from); i >= 0 && i + 1 < source.Length; i = source.IndexOf('{', i + 1))
            if (source[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    // Python's str.splitlines boundaries joined by "\n", the final newline dropped (keep_trailing_newline=False).
    private static string NormalizeNewlines(string source)
    {
        var text = new StringBuilder(source.Length);
        for (int i = 0; i < source.Length; i++)
        {
            char c = source[i];
            if (c == '\r' && i + 1 < source.Length && source[i + 1] == '\n') { text.Append('\n'); i++; }
            else if (c is '\r' or '\v' or '\f' or '\u001c' or '\u001d' or '\u001e' or '\u0085' or '\u2028' or '\u2029') text.Append('\n');
            else text.Append(c);
        }
        if (text.Length > 0 && text[^1] == '\n') text.Length--;
        return text.ToString();
    }

    // Tokens of an expression or statement up to its closing delimiter; returns the delimiter's index.
    private static int Tokenize(string source, int i, string closing, List<Token> tokens)
    {
        while (true)
        {
            while (i < source.Length && char.IsWhiteSpace(source[i])) i++;
            if (i >= source.Length) throw new TemplateException($"a tag is never closed with {closing}");
            if (string.CompareOrdinal(source, i, closing, 0, 2) == 0) return i;
            // "-%}" and "+%}": the sign belongs to the delimiter.
            if (source[i] is '-' or '+' && string.CompareOrdinal(source, i + 1, closing, 0, 2) == 0)
            {
                tokens.Add(new Token(TokenKind.Operator, source[i].ToString()));
                return i + 1;
            }
            char c = source[i];
            if (char.IsLetter(c) || c == '_')
            {
                int start = i;
                while (i < source.Length && (char.IsLetterOrDigit(source[i]) || source[i] == '_')) i++;
                tokens.Add(new Token(TokenKind.Name, source[start..i]));
            }
            else if (char.IsAsciiDigit(c))
            {
                int start = i;
                while (i < source.Length && (char.IsAsciiDigit(source[i]) || source[i] == '_')) i++;
                bool isFloat = false;
                if (i + 1 < source.Length && source[i] == '.' && char.IsAsciiDigit(source[i + 1]))
                {
                    isFloat = true;
                    i++;
                    while (i < source.Length && char.IsAsciiDigit(source[i])) i++;
                }
                if (i < source.Length && source[i] is 'e' or 'E' && i + 1 < source.Length && (char.IsAsciiDigit(source[i + 1]) || source[i + 1] is '+' or '-'))
                {
                    isFloat = true;
                    i += 2;
                    while (i < source.Length && char.IsAsciiDigit(source[i])) i++;
                }
                string number = source[start..i].Replace("_", "");
                tokens.Add(isFloat
                    ? new Token(TokenKind.Float, number, double.Parse(number, CultureInfo.InvariantCulture))
                    : new Token(TokenKind.Integer, number, long.Parse(number, CultureInfo.InvariantCulture)));
            }
            else if (c is '\'' or '"') i = ReadString(source, i, tokens);
            else
            {
                string? op = s_operators.FirstOrDefault(o => string.CompareOrdinal(source, i, o, 0, o.Length) == 0);
                if (op is null) throw new TemplateException($"unexpected character '{c}' in a tag");
                tokens.Add(new Token(TokenKind.Operator, op));
                i += op.Length;
            }
        }
    }

    // A Python string literal with its escapes.
    private static int ReadString(string source, int i, List<Token> tokens)
    {
        char quote = source[i++];
        var text = new StringBuilder();
        while (true)
        {
            if (i >= source.Length) throw new TemplateException("a string literal is never closed");
            char c = source[i++];
            if (c == quote) break;
            if (c != '\\' || i >= source.Length) { text.Append(c); continue; }
            char e = source[i++];
            switch (e)
            {
                case 'n': text.Append('\n'); break;
                case 't': text.Append('\t'); break;
                case 'r': text.Append('\r'); break;
                case '0': text.Append('\0'); break;
                case '\\': case '\'': case '"': text.Append(e); break;
                case '\n': break;
                case 'u' when i + 4 <= source.Length:
                    text.Append((char)Convert.ToInt32(source.Substring(i, 4), 16)); i += 4; break;
                case 'x' when i + 2 <= source.Length:
                    text.Append((char)Convert.ToInt32(source.Substring(i, 2), 16)); i += 2; break;
                default: text.Append('\\').Append(e); break;
            }
        }
        tokens.Add(new Token(TokenKind.String, text.ToString(), text.ToString()));
        return i;
    }
}
