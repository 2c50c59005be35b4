trait Greeter {
  def greet(name: String): String
}

object Polite extends Greeter {
  override def greet(name: String): String = s"Good day, $name"
}

implicit class RichInt(val n: Int) extends AnyVal {
  def squared: Int = n * n
}
