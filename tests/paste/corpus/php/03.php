$config = array(
    'host' => 'localhost',
    'user' => 'root',
    'name' => 'shop',
);

$pdo = new PDO("mysql:host={$config['host']};dbname={$config['name']}", $config['user'], '');
foreach ($pdo->query('SELECT id, title FROM products') as $row) {
    echo $row['id'] . ': ' . $row['title'] . "\n";
}
