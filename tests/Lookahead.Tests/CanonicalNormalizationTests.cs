using Lookahead.Tokenization.Unicode;

namespace Lookahead.Tests;

/// <summary>
/// Our NFC/NFD table against normalizations the Unicode standard spells out (UAX #15's examples and
/// NormalizationTest.txt lines), so a tokenizer's normalizer does not depend on the runtime's ICU.
/// </summary>
public class CanonicalNormalizationTests
{
    [TestCase("e\u0301", "\u00E9")]                       // a mark composes onto its base
    [TestCase("\u212B", "\u00C5")]                         // ANGSTROM SIGN is a singleton: its NFC is Å
    [TestCase("A\u030A", "\u00C5")]
    [TestCase("\u1E0B\u0323", "\u1E0D\u0307")]             // marks reordered by class, then the lower one composes
    [TestCase("q\u0307\u0323", "q\u0323\u0307")]           // no composite: only reordered
    [TestCase("\u1100\u1161\u11A8", "\uAC01")]             // Hangul jamo compose algorithmically
    [TestCase("\uAC00\u11A8", "\uAC01")]
    [TestCase("\u0958", "\u0915\u093C")]                   // a composition exclusion stays decomposed
    [TestCase("\u0301e", "\u0301e")]                        // a leading mark has nothing to compose onto
    [TestCase("a\u0308\u0301", "\u00E4\u0301")]            // the second mark is blocked by nothing but has no composite with ä
    [TestCase("plain ascii", "plain ascii")]
    [TestCase("\uD835\uDC00\u0301", "\uD835\uDC00\u0301")] // beyond the BMP
    public void ComposesAsTheStandardSays(string text, string nfc) => Assert.That(CanonicalNormalization.ToFormC(text), Is.EqualTo(nfc));

    [TestCase("\u00E9", "e\u0301")]
    [TestCase("\uAC01", "\u1100\u1161\u11A8")]
    [TestCase("\u1E69", "s\u0323\u0307")]                  // ṩ: dot below before dot above
    [TestCase("\u212B", "A\u030A")]
    public void DecomposesAsTheStandardSays(string text, string nfd) => Assert.That(CanonicalNormalization.ToFormD(text), Is.EqualTo(nfd));
}
