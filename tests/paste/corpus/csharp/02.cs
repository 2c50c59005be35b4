public class Customer
{
    public int Id { get; set; }
    public string Name { get; set; }
    public string Email { get; init; }
    public DateTime CreatedAt { get; private set; } = DateTime.UtcNow;

    public override string ToString() => $"{Name} <{Email}>";
}
