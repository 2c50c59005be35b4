fetch(`https://api.example.com/items?page=${page}`)
  .then((response) => {
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  })
  .then((data) => {
    data.items.forEach((item) => {
      console.log(item.id, item.name);
    });
  })
  .catch((err) => console.error('failed:', err));
