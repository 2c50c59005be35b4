require 'json'

class Greeter
  attr_reader :name

  def initialize(name)
    @name = name
  end

  def greet
    puts "Hello, #{name}!"
  end
end

Greeter.new('world').greet
