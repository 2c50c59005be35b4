package com.example.app

import kotlinx.coroutines.delay

data class User(val id: Long, val name: String, val email: String? = null)

fun main() {
    val users = listOf(User(1, "Ada"), User(2, "Linus", "linus@example.org"))
    users.filter { it.email != null }
        .forEach { println("${it.name} -> ${it.email}") }
}
