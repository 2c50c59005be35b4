sealed class Result<out T> {
    data class Success<T>(val value: T) : Result<T>()
    data class Failure(val error: Throwable) : Result<Nothing>()
}

fun describe(result: Result<Int>): String = when (result) {
    is Result.Success -> "ok: ${result.value}"
    is Result.Failure -> "failed: ${result.error.message}"
}
