const config: Record<string, number> = {
  retries: 3,
  timeoutMs: 5000,
};

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}

let attempts: number = 0;
while (attempts < config.retries) {
  attempts = clamp(attempts + 1, 0, 10);
}
export { clamp, config };
