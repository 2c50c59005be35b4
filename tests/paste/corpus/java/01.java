package com.example.demo;

import java.util.ArrayList;
import java.util.List;

public class Inventory {
    private final List<String> items = new ArrayList<>();

    public void add(String item) {
        items.add(item);
    }

    public int size() {
        return items.size();
    }

    public static void main(String[] args) {
        Inventory inv = new Inventory();
        inv.add("hammer");
        System.out.println("items: " + inv.size());
    }
}
