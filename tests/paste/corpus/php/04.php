class Cart
{
    private array $items = [];

    public function add(string $sku, int $qty = 1): void
    {
        if (!isset($this->items[$sku])) {
            $this->items[$sku] = 0;
        }
        $this->items[$sku] += $qty;
    }

    public function count(): int
    {
        return array_sum($this->items);
    }
}
