class ProfileViewController: UIViewController {
    @IBOutlet weak var nameLabel: UILabel!
    var user: User?

    override func viewDidLoad() {
        super.viewDidLoad()
        nameLabel.text = user?.name ?? "Anonymous"
    }

    @IBAction func logoutTapped(_ sender: Any) {
        dismiss(animated: true, completion: nil)
    }
}
