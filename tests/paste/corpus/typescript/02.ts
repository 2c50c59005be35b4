type Handler<T> = (payload: T) => void;

export class Bus<T> {
  private handlers: Handler<T>[] = [];

  subscribe(handler: Handler<T>): () => void {
    this.handlers.push(handler);
    return () => {
      this.handlers = this.handlers.filter((h) => h !== handler);
    };
  }

  publish(payload: T): void {
    for (const h of this.handlers) h(payload);
  }
}
