class EventEmitter {
  constructor() {
    this.listeners = new Map();
  }

  on(name, handler) {
    if (!this.listeners.has(name)) this.listeners.set(name, []);
    this.listeners.get(name).push(handler);
    return this;
  }

  emit(name, ...args) {
    const handlers = this.listeners.get(name) || [];
    handlers.forEach((h) => h(...args));
    return handlers.length !== 0;
  }
}

module.exports = EventEmitter;
