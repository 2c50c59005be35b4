class Article < ApplicationRecord
  belongs_to :author
  has_many :comments, dependent: :destroy

  validates :title, presence: true, length: { maximum: 120 }

  scope :published, -> { where(published: true).order(created_at: :desc) }

  def summary
    body.to_s.truncate(200)
  end
end
