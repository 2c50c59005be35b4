<?php
declare(strict_types=1);

final class Slugger
{
    public static function slug(string $title): string
    {
        $slug = strtolower(trim($title));
        $slug = preg_replace('/[^a-z0-9]+/', '-', $slug);
        return trim($slug, '-');
    }
}

echo Slugger::slug('Hello World, Again!');
