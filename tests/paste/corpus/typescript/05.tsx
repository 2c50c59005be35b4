import React, { useState } from 'react';

type Props = {
  initial: number;
  label?: string;
};

export const Counter: React.FC<Props> = ({ initial, label = 'Count' }) => {
  const [count, setCount] = useState<number>(initial);
  return (
    <button onClick={() => setCount(count + 1)}>
      {label}: {count}
    </button>
  );
};
