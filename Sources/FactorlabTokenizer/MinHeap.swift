/// A binary min-heap: `pop` returns the smallest element by `<`.
struct MinHeap<Element: Comparable> {
    private(set) var elements: [Element] = []

    var isEmpty: Bool { elements.isEmpty }
    var count: Int { elements.count }

    mutating func removeAll() { elements.removeAll(keepingCapacity: true) }

    mutating func push(_ element: Element) {
        elements.append(element)
        var child = elements.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !(elements[child] < elements[parent]) { break }
            elements.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard let last = elements.popLast() else { return nil }
        if elements.isEmpty { return last }
        let top = elements[0]
        elements[0] = last
        var parent = 0
        let n = elements.count
        while true {
            let left = 2 * parent + 1
            if left >= n { break }
            let right = left + 1
            let child = (right < n && elements[right] < elements[left]) ? right : left
            if !(elements[child] < elements[parent]) { break }
            elements.swapAt(child, parent)
            parent = child
        }
        return top
    }
}
