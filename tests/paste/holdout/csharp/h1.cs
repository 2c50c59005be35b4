using System.Text.Json;

public record Settings(string Theme, int FontSize);

public static class SettingsStore
{
    public static Settings Load(string path)
    {
        var json = File.ReadAllText(path);
        return JsonSerializer.Deserialize<Settings>(json) ?? new Settings("light", 14);
    }
}
