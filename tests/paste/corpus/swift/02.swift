import Foundation

func loadUser(id: Int, completion: @escaping (Result<User, Error>) -> Void) {
    guard let url = URL(string: "https://api.example.com/users/\(id)") else {
        return
    }
    URLSession.shared.dataTask(with: url) { data, _, error in
        if let error = error {
            completion(.failure(error))
            return
        }
        guard let data = data else { return }
        completion(Result { try JSONDecoder().decode(User.self, from: data) })
    }.resume()
}
