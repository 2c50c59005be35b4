object Main extends App {
  case class Person(name: String, age: Int)

  val people = List(Person("Ann", 34), Person("Bo", 19), Person("Cy", 52))
  val adults = people.filter(_.age >= 21).map(_.name)
  println(adults.mkString(", "))
}
