fun fibonacci(n: Int): List<Long> {
    val result = mutableListOf(0L, 1L)
    while (result.size < n) {
        result.add(result[result.size - 1] + result[result.size - 2])
    }
    return result.take(n)
}

fun main() {
    println(fibonacci(10).joinToString())
}
