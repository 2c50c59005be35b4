public static class StringExtensions
{
    public static string Truncate(this string value, int max)
    {
        if (string.IsNullOrEmpty(value)) return value;
        return value.Length <= max ? value : value.Substring(0, max) + "...";
    }

    public static bool IsBlank(this string value)
    {
        return string.IsNullOrWhiteSpace(value);
    }
}
