<?php

function greet(string $name): string
{
    return "Hello, " . htmlspecialchars($name) . "!";
}

$name = $_GET['name'] ?? 'world';
echo greet($name);
