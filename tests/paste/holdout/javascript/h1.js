const fs = require('fs/promises');

async function main() {
  const files = await fs.readdir('./posts');
  const posts = [];
  for (const file of files.filter((f) => f.endsWith('.md'))) {
    const text = await fs.readFile(`./posts/${file}`, 'utf8');
    posts.push({ file, words: text.split(/\s+/).length });
  }
  console.table(posts);
}

main().catch((e) => { console.error(e); process.exit(1); });
