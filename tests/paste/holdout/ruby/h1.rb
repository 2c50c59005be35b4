require 'net/http'
require 'json'

uri = URI('https://api.example.com/weather?city=Oslo')
response = Net::HTTP.get_response(uri)

if response.is_a?(Net::HTTPSuccess)
  data = JSON.parse(response.body)
  puts "Temperature: #{data['temp']}"
else
  warn "Request failed: #{response.code}"
end
