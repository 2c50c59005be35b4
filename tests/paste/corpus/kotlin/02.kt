class Repository(private val api: Api) {
    private val cache = mutableMapOf<Long, Item>()

    suspend fun item(id: Long): Item {
        return cache[id] ?: api.fetch(id).also { cache[id] = it }
    }

    companion object {
        const val TAG = "Repository"
    }
}
