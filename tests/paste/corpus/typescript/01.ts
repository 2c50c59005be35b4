interface User {
  id: number;
  name: string;
  email?: string;
}

export async function loadUser(id: number): Promise<User> {
  const res = await fetch(`/api/users/${id}`);
  if (!res.ok) {
    throw new Error(`failed with ${res.status}`);
  }
  return (await res.json()) as User;
}
