using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Lookahead.Decoding;
using Lookahead.Model;
using Lookahead.Server;
using Lookahead.Tests.Fixtures;
using Lookahead.Tokenization;

namespace Lookahead.Tests;

/// <summary>
/// Chat messages to prompt ids for model folders with a tokenizer.json and a chat_template, against two
/// independent oracles chained: Python's jinja2 renders the messages (tests/data/chat-templates) and
/// Hugging Face's Rust tokenizers gives the ids of that rendering (tests/data/tokenizers/*/chat-expected.json).
/// Then a server over a random model with Qwen3's vocabulary answers a chat request from those ids.
/// </summary>
public class ChatPromptTests
{
    private static IEnumerable<(string Name, List<ChatTurn> Messages, bool GenerationPrompt, string Output, int[] Ids)> Cases(string tokenizer)
    {
        using JsonDocument expected = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TokenizerFolders.Source(tokenizer), "chat-expected.json")));
        string family = expected.RootElement.GetProperty("template").GetString()!;
        Dictionary<string, int[]> ids = expected.RootElement.GetProperty("cases").EnumerateArray().ToDictionary(
            c => c.GetProperty("name").GetString()!, c => c.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray());
        using JsonDocument golden = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "chat-templates", family, "golden.json")));
        var cases = new List<(string, List<ChatTurn>, bool, string, int[])>();
        foreach (JsonElement c in golden.RootElement.GetProperty("cases").EnumerateArray())
        {
            string name = c.GetProperty("name").GetString()!;
            if (!ids.TryGetValue(name, out int[]? caseIds)) continue;
            List<ChatTurn> messages = c.GetProperty("messages").EnumerateArray()
                .Select(m => new ChatTurn(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToList();
            cases.Add((name, messages, c.GetProperty("add_generation_prompt").GetBoolean(), c.GetProperty("output").GetString()!, caseIds));
        }
        Assert.That(cases, Has.Count.GreaterThan(5));
        return cases;
    }

    [TestCase("qwen3")]
    [TestCase("llama3")]
    public void MessagesBecomeTheIdsTransformersGives(string tokenizerName)
    {
        string folder = TokenizerFolders.Unpack(tokenizerName);
        TextTokenizer tokenizer = TokenizerFolders.Load(tokenizerName);
        ChatPrompt prompt = ChatPrompt.ForModel(folder);
        Assert.That(prompt.UsesTemplate, Is.True);
        int checkedCases = 0;
        foreach ((string name, List<ChatTurn> messages, bool generationPrompt, string output, int[] ids) in Cases(tokenizerName))
        {
            if (!generationPrompt) continue;  // a chat request always asks for the assistant's turn
            string rendered = prompt.Render(messages);
            Assert.That(rendered, Is.EqualTo(output), $"{name}: rendering");
            Assert.That(prompt.Encode(tokenizer, rendered), Is.EqualTo(ids), $"{name}: ids");
            checkedCases++;
        }
        Assert.That(checkedCases, Is.GreaterThan(3));
    }

    [Test]
    public void ATemplatesOwnRefusalIsAnArgumentErrorWithItsWords()
    {
        string folder = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"lookahead-chat-refusal-{Environment.ProcessId}")).FullName;
        string template = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "chat-templates", "mistral-v0.2-legacy", "template.jinja"));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"),
            JsonSerializer.Serialize(new Dictionary<string, string> { ["chat_template"] = template, ["bos_token"] = "<s>", ["eos_token"] = "</s>" }));
        ChatPrompt prompt = ChatPrompt.ForModel(folder);
        Assert.That(prompt.Render([new ChatTurn("user", "hi")]), Is.EqualTo("<s>[INST] hi [/INST]"));
        var error = Assert.Throws<ArgumentException>(() => prompt.Render([new ChatTurn("user", "a"), new ChatTurn("user", "b")]));
        Assert.That(error!.Message, Does.Contain("Conversation roles must alternate user/assistant/user/assistant/..."));
    }

    [Test]
    public async Task TheServerAnswersChatOnATokenizerJsonModelFromTheTemplatesIds()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"lookahead-qwen3-vocab-{Environment.ProcessId}");
        if (!File.Exists(Path.Combine(folder, "config.json")))
        {
            var shape = new SyntheticShape("qwen3-vocabulary", VocabSize: 151_669, HiddenSize: 32, IntermediateSize: 64, NumLayers: 1,
                NumHeads: 2, NumKvHeads: 1, MaxPositionEmbeddings: 512, RopeTheta: 1_000_000, TieWordEmbeddings: true);
            SyntheticModel.Write(shape, TensorDtype.BF16, folder, seed: 5);
        }
        string tokenizerFolder = TokenizerFolders.Unpack("qwen3");
        foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(tokenizerFolder, file), Path.Combine(folder, file), overwrite: true);

        using LanguageModel model = LanguageModel.Load(folder);
        Assert.That(model.Tokenizer, Is.Not.Null, "tokenizer.json gives the model text in and out");
        await using LookaheadServer server = await LookaheadServer.StartAsync(model, new ServerOptions
        {
            Port = 0, MaxConcurrency = 2, QueueLimit = 8,
            Context = new ContextOptions { Backend = Backend.Cpu, ContextLength = 256, Threads = 1 },
        });
        using var http = new HttpClient { BaseAddress = server.Address };
        (string _, List<ChatTurn> messages, _, string rendered, int[] ids) = Cases("qwen3").First(c => c.Name == "system_user");
        var body = new
        {
            messages = messages.Select(m => new { role = m.Role, content = m.Content }),
            max_tokens = 12, temperature = 0,
        };
        using HttpResponseMessage response = await http.PostAsJsonAsync("v1/chat/completions", body);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), await response.Content.ReadAsStringAsync());
        using JsonDocument answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.That(answer.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), Is.EqualTo(ids.Length));
        string alone = TextOracle.Alone(model, rendered, new GenerationOptions { MaxTokens = 12, Mode = DecodingMode.Greedy });
        Assert.That(answer.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), Is.EqualTo(alone));
    }
}
