sealed trait Expr
case class Num(value: Int) extends Expr
case class Add(left: Expr, right: Expr) extends Expr

def eval(expr: Expr): Int = expr match {
  case Num(v)    => v
  case Add(l, r) => eval(l) + eval(r)
}
