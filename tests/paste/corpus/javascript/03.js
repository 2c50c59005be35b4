export function debounce(fn, wait = 200) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn.apply(this, args), wait);
  };
}

export const sum = (xs) => xs.reduce((acc, x) => acc + x, 0);

export default { debounce, sum };
