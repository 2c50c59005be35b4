import scala.concurrent.Future
import scala.concurrent.ExecutionContext.Implicits.global

class UserService(repo: UserRepository) {
  def find(id: Long): Future[Option[User]] =
    repo.byId(id).map(_.filter(_.active))

  def names: Future[Seq[String]] =
    repo.all().map(users => users.map(_.name).sorted)
}
