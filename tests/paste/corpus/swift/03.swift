protocol Shape {
    func area() -> Double
}

struct Circle: Shape {
    let radius: Double
    func area() -> Double { .pi * radius * radius }
}

extension Array where Element == Shape {
    var totalArea: Double { reduce(0) { $0 + $1.area() } }
}

let shapes: [Shape] = [Circle(radius: 1), Circle(radius: 2)]
print(shapes.totalArea)
