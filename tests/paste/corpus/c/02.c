typedef struct node {
    int value;
    struct node *next;
} node_t;

node_t *push(node_t *head, int value)
{
    node_t *n = malloc(sizeof(node_t));
    if (n == NULL)
        return head;
    n->value = value;
    n->next = head;
    return n;
}

void free_list(node_t *head)
{
    while (head != NULL) {
        node_t *next = head->next;
        free(head);
        head = next;
    }
}
