object WordFreq {
  def main(args: Array[String]): Unit = {
    val text = "the quick brown fox jumps over the lazy dog the end"
    val freq = text.split(" ").groupBy(identity).view.mapValues(_.length).toMap
    freq.toSeq.sortBy(-_._2).take(3).foreach { case (w, n) => println(s"$w: $n") }
  }
}
