export interface Todo {
  id: string;
  title: string;
  done: boolean;
}

export function toggle(todos: Todo[], id: string): Todo[] {
  return todos.map((t) => (t.id === id ? { ...t, done: !t.done } : t));
}

export const remaining = (todos: Todo[]): number => todos.filter((t) => !t.done).length;
