module Inventory
  class Item
    attr_accessor :name, :count

    def initialize(name, count = 0)
      @name = name
      @count = count
    end

    def empty?
      count.zero?
    end
  end
end

items = [Inventory::Item.new('bolt', 3), Inventory::Item.new('nut')]
items.reject(&:empty?).each { |item| puts item.name }
